"""Deployment: the ``.hrnn`` file format, export from PyTorch, the NumPy runtime, the integer
(fixed-point) model and C code generation, with the C templates under ``templates/``.

Everything here after export is NumPy-only: ``import hadamrnn.deploy.runtime`` never loads PyTorch.
"""
