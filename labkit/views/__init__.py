"""Plots and widgets shared by chapters."""
