"""Example apps that ship with Celeriac."""
