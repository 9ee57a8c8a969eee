"""JupyterLab front end of the MLOps Workbench (a prebuilt labextension).

The server side, `workbench.jupyter`, lives in the main `workbench` package;
this distribution enables it through
``etc/jupyter/jupyter_server_config.d/workbench.json``.
"""

try:
    from ._version import __version__
except ImportError:
    # Fallback when using the package in dev mode without installing in editable mode with pip.
    import warnings

    warnings.warn(
        "Importing 'workbench_jupyterlab' outside a proper installation.", stacklevel=2
    )
    __version__ = "dev"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "@mlops-workbench/jupyterlab"}]
