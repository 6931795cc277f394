"""The Explain pane any panel can show: sentences, formulas drawn by mathtext, folding."""

from PySide6.QtCore import Qt

from studio.ui.mathtext import draw_all
from studio.ui.widgets.explain import ExplainPane


def test_formulas_are_drawn_once_released_and_a_bad_one_is_named(qtbot):
    pane = ExplainPane("Explain: test", held=True)
    qtbot.addWidget(pane)
    pane.show()
    pane.set_text("An <b>encoder</b> and a decoder.")
    pane.set_equations([r"z = \mu + \sigma \odot \epsilon", r"\frac{1}{2", r"x^2"])
    qtbot.wait(100)
    assert pane.drawn_equations() == []  # held: the panel's first picture is not up yet
    with qtbot.waitSignal(pane.equationsDrawn, timeout=30000):
        pane.release()
    good, bad, small = pane.equation_labels
    assert not good.pixmap().isNull() and good.pixmap().width() > small.pixmap().width() > 5
    assert bad.pixmap().isNull() and "cannot draw the formula" in bad.text() and r"\frac{1}{2" in bad.text()
    with qtbot.waitSignal(pane.equationsDrawn, timeout=30000):
        pane.set_equations([r"x^2"])  # fewer formulas: the others are hidden
    assert [label.isVisible() for label in pane.equation_labels] == [True, False, False]


def test_folding_hides_the_content(qtbot):
    pane = ExplainPane("Explain: test")
    qtbot.addWidget(pane)
    pane.show()
    with qtbot.waitSignal(pane.toggled) as folded:
        qtbot.mouseClick(pane.header, Qt.MouseButton.LeftButton)
    assert folded.args == [False] and not pane.content.isVisible()
    pane.toggle()
    assert pane.is_expanded() and pane.content.isVisible()


def test_masks_are_ink_on_nothing():
    mask, error = draw_all([r"\mathrm{KL}", r"\sqrt{"])
    assert mask.dtype.name == "uint8" and mask.max() == 255 and (mask == 0).mean() > 0.3
    assert isinstance(error, str) and "sqrt" in error
