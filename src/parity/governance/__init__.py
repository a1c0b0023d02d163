"""Governance: who may do what (tokens, roles), what was done (the audit log), and what is
sensitive (classification, masking, encryption, erase, restriction, retention).

Each part observes or shapes the core through hooks (``parity.hooks``); the caller a
read or write runs for is the *actor* of ``parity.governance.context``.
"""
