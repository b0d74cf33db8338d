"""sublora-cli: the `sublora` command. The CLI formats; the library raises."""
