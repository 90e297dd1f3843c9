"""Every change the plugin makes to basicsr 1.4.2, and when it applies. ``docs/basicsr_changes.md`` lists each one.

Nothing edits site-packages: a change rebinds one BasicSR name, through :mod:`.changes`, which refuses to change a
name twice. There are three scopes:

* **import** (:func:`apply_import_fixes`, called by ``import sfmnet_plugin``, for the whole process): what basicsr
  1.4.2 needs on today's torch, torchvision and lmdb to import and to load safely. Without the first,
  ``import basicsr`` fails; the others change nothing that worked before, only what crashed or was unsafe.

  * :mod:`.versions` - newer torchvision (``functional_tensor`` alias; must run before basicsr is imported) and
    lmdb (one shared environment per database);
  * :mod:`.distributed` - ``--launcher pytorch`` and DDP wrapping on machines without CUDA;
  * :mod:`.hardening` - weights-only ``torch.load`` and a safe YAML loader in BasicSR's own code paths.

* **model** (:class:`.model_methods.PluginModelMethods`, a base of every model of the plugin): atomic and
  safetensors saves with options (:mod:`.saving`), exact resume (:mod:`.resume`) and non-finite guards, as
  methods. Another project's BasicSR models keep BasicSR's ``save_network``, ``validation`` and the rest.
* **run** (:func:`sfmnet_plugin.launch.session.run_session`, for the length of one launcher run): resume from the
  experiment's own folder with the exact sample stream, stop signals that save, the model methods above for any
  model the run builds, and the launcher's terminal, ETA, folder locks and undo.
"""
from sfmnet_plugin.compat import distributed, hardening, versions


def apply_import_fixes() -> None:
    """Apply the import-scope changes; a second call changes nothing."""
    versions.alias_torchvision_functional_tensor()
    versions.patch_lmdb_shared_environments()
    distributed.patch_init_dist_for_cpu()
    distributed.patch_ddp_wrapping_for_cpu()
    hardening.patch_safe_torch_load()
    hardening.patch_safe_yaml()
