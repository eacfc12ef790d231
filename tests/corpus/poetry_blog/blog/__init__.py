"""A small blog: authors and their posts."""
