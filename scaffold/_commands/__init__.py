"""One module per command; each returns values and raises `scaffold.errors` exceptions."""
