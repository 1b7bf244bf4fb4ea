"""kubeling's default controllers and the controller manager component that runs them.

The manager (:mod:`.manager`) is a leader-elected control-plane component.  Every
reconciler it runs is registered through ``kubeling_register_controllers`` (ours in
:mod:`.hooks`), so a user disables one with ``controllers.disabled`` or adds their own from
another plugin.  Controllers follow Kubernetes' sample-controller pattern
(:mod:`.base`): informer handlers only enqueue keys, workers reconcile one key at a time
from the informer caches, and failures are retried with per-item exponential backoff.
"""
