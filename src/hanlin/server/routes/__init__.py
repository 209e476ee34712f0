"""The server's route modules: one per API area, each a thin layer over the library."""
