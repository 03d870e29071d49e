"""What every party of an emulated site shares, and nothing else.

The wire protocol (:mod:`lca_common.protocol`), YAML loading with file, line and
key path in every error (:mod:`lca_common.yamlsource`), a scaled clock
(:mod:`lca_common.clock`) and what the command-line entry points share
(:mod:`lca_common.entrypoints`).  The emulator (``lca_emulator``) and the SIP Server
stub (``sipserver_stub``) both depend on this package; it depends on neither.
"""

__all__: list[str] = []
