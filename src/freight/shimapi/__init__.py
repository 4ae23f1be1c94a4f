"""freight.shimapi: the wire protocol between the daemon and a shim's stdio socket."""
