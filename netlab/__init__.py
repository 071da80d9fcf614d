"""netlab: the network-programming chat lab as one toolkit."""

__version__ = "0.1.0"
