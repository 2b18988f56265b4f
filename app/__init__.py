"""Radio Silence: notices when a sales conversation has gone quiet."""

__version__ = "0.1.0"
