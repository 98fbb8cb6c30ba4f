"""One worker process per user (design.md section 3, "Processes").

The main process owns the listeners, TLS and authentication; after a
login, the connection is served by the user's worker, which owns the
user's stores.  The pieces, in the order a login meets them:

* :mod:`.manager` -- main side: one worker per user, started on demand,
  the handoff of a logged-in connection, death detection and ``* BYE``;
* :mod:`.zygote` -- the pre-loaded template process that forks workers
  (:mod:`.preload` lists what it imports);
* :mod:`.privileges` -- a worker becomes the owner of its mail root;
* :mod:`.child` -- the worker itself: stores and connections of one user;
* :mod:`.relay` -- TLS connections relayed between client and worker;
* :mod:`.protocol` -- the bounded messages (and descriptors) between them,
  over socketpairs that nobody else can reach.
"""
