"""tallybot core: everything that is not a chat platform."""

__version__ = "0.1.0"
