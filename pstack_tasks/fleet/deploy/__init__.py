"""``pstack deploy``: install and run workers on a fleet of hosts over SSH (docs/deployment.md).

:mod:`.hosts` parses the hosts, :mod:`.wheelhouse` builds the wheels they install from,
:mod:`.remote` is one SSH connection, :mod:`.steps` the steps on a host, :mod:`.service` its
systemd unit or supervisor, :mod:`.hostops` one host's deploy/stop/status, and :mod:`.fleetrun`
runs them on every host at once and waits for the workers to register.
"""
