"""The one place that picks the progress-bar class (STYLE.md section 6).

``tqdm.auto`` draws a widget in a Jupyter kernel, but where ``ipywidgets`` is not installed
it falls back to text after emitting ``TqdmWarning: IProgress not found`` at import. We use
``tqdm.auto`` only when ``ipywidgets`` can be imported and plain ``tqdm.std`` otherwise:
the same text bar on stderr, without the warning. Every progress bar in the library comes
from here.

Examples
--------
>>> import io
>>> from repurpose._progress import tqdm
>>> with tqdm(total=3, file=io.StringIO()) as bar:
...     _ = bar.update(3)
>>> bar.n
3
"""
import importlib.util

__all__ = ["tqdm", "HAS_WIDGETS"]

#: Whether ``ipywidgets`` is importable, so ``tqdm.auto`` can draw notebook widgets.
HAS_WIDGETS = importlib.util.find_spec("ipywidgets") is not None

if HAS_WIDGETS:
    from tqdm.auto import tqdm
else:
    from tqdm.std import tqdm
