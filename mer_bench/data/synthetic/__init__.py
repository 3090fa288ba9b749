"""Synthetic twins of the real MER datasets: rendering (``render``) and the twins (``twins``)."""
