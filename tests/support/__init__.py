"""What tests share and never test themselves: builders of small models, bundles, corpora and
original-project files (``helpers``, ``original_project``, ``isa_micro``), a server in a
subprocess (``serving``) and the Node.js runtime (``node_runtime``)."""
