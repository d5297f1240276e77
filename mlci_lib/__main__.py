from mlci_lib.cli import entrypoint

entrypoint()
