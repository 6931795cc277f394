"""Every GUI measurement of ``python -m studio.bench``: real windows, driven offscreen by real events.

The driving and timing every measurement shares is in ``common``; the app-wide
measurements are here too (``vae``: slider to pixels and start-up; ``training``:
the event loop's lateness while a run trains). A family's own gestures (a drop on
the CycleGAN, a StyleGAN mixing grid, a diffusion sample) sit in its ``ui/measure.py``
beside the widgets they drive, built from ``common``. Nothing here is used by the app.
"""
