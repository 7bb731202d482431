"""vtrade: a high-fidelity paper-trading simulator and Jupyter analytics workbench.

>>> import vtrade as vt
>>> vt.__version__
'0.1.0'
"""

__version__ = "0.1.0"
