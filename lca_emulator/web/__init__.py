"""Pages for people: the live status page of ``serve --http`` (:mod:`.live`) and the report
of ``run --html`` (:mod:`.report`), sharing one palette (:mod:`.style`).

Our addition, as a rehearsal aid: the vendor has its own consoles (SCI, GAX).
"""
