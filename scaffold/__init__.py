"""scaffold: start a deep-learning experiment as a standalone PyTorch project.

The package never imports torch, and imports copier only when it renders, so
``scaffold --help`` starts in a moment.
"""

__version__ = "0.1.0"
