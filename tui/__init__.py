"""The Textual terminal interface of shark: it presents what the shark package produces."""
