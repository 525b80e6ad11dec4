"""Configuration sections: one frozen dataclass and its parser per feature."""
