"""One module per command; app.py wires them."""
