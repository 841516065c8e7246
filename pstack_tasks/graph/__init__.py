"""Stage 1, the application: graph-schema XML (v2, v3, v4) read into a typed model of the graph
type and a packed instance (devices, edges, properties and state as the engine's structs).

Modules, in the order the data flows:

- ``loader``: the entry points ``load()``, ``load_graph_type()``, ``detect_version()``, and
  ``FORMATS``, the one ``{version: (type parser, instance builder)}`` table.
- ``app_file``: opening an application file, plain or gzip-compressed (``.xml.gz``, told by its
  magic bytes, decompressed as it is read), and the names of application files.
- ``elements``: namespaces, element helpers, JSON value bodies, XML syntax errors.
- ``walker``: ``GraphTypeWalker``, the one walk over a ``<GraphType>`` and the checks every
  version shares; ``v3`` (v2 and v3) and ``v4`` supply its per-version hooks.
- ``cdecl``: v4's C declarations and brace initialisers, as text.
- ``model``: the typed graph type (structs, message and device types, pins, code).
- ``instance``: ``InstanceBuilder``, which packs each streamed ``DevI``/``EdgeI``; ``v4`` adds
  ``InstanceBuilderV4`` for initialiser attributes.
- ``values``: packing value dicts into the engine's struct bytes; ``indexed``: ``sendIndex``.
- ``application``: what a parse returns (``Application``, ``Instance``) and ``region_array``.

The binary instance file the engine reads is the native stage's (``native/instance_file.py``).
"""
