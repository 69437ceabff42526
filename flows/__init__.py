"""Flows: the pipeline's compositions (annual run, re-run) and the ``brukardata`` command line."""
