"""The systems that may call: their keys, models, limits and policies (systems), the copy each
instance keeps fresh (cache), the file or blob that holds them (store), changes to them (admin),
the audit log of those changes (audit), and erasure of a system's data (purge).

Imports from shared/: the layers below it (up to usage).
"""
