"""Quantization Explorer: entry point and router.

The sidebar (data source, quantization settings) is drawn here, before the page,
so its widgets keep their values on every page and in the URL. Pages: Explore,
Compare methods, What-if, Learn (see ``ui/router.py``).
"""

from ui import router

router.run()
