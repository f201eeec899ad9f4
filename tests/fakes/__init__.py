"""Fakes of the ports in shared.ports, for unit tests of logic only."""
