"""A generated decision matrix for the SIP Server stub, judged by an independent oracle.

* :mod:`.table`: the decision table of ``docs/sipserver-stub.md`` and the vendor page
  (``backup-init-check`` and its companion options) as data.
* :mod:`.oracle`: ``expected(case)``, what the Management Layer should observe, written
  from that table only (it never looks at ``sipserver_stub``).
* :mod:`.covering`: a deterministic pairwise (2-way) covering design.
* :mod:`.cases`: every case of the matrix and its scenario document.
* :mod:`.compare`: observed against expected, and the table of differences.

Nothing here imports the project or Twisted; ``tests/test_decision_matrix.py`` runs the
cases through the real harness.
"""
