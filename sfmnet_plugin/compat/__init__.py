"""Run-time fixes to basicsr 1.4.2, grouped by kind and applied by :func:`apply_all`.

basicsr 1.4.2 (the newest release on PyPI, August 2022) breaks in several places on torch >= 2,
torchvision >= 0.17 and lmdb >= 2, and some of its code paths are unsafe. Nothing here edits
site-packages: every fix rebinds a name at run time, is idempotent, and leaves the GPU behaviour
untouched. ``import sfmnet_plugin`` calls :func:`apply_all` (registering components needs basicsr,
which cannot even be imported on torchvision >= 0.17 without the first fix).

* :mod:`.versions` - newer torchvision (``functional_tensor`` alias; must run before basicsr is
  imported) and lmdb (one shared environment per database).
* :mod:`.distributed` - ``--launcher pytorch`` and DDP wrapping on machines without CUDA.
* :mod:`.checkpoints` - resume from the experiment's own folder onto any device; atomic saves; networks
  saved as ``.pth`` or ``.safetensors`` (``path.network_format``) with their options.
* :mod:`.resume` - resume continues the same sample stream and random states; SIGINT/SIGTERM save a state.
* :mod:`.hardening` - weights-only ``torch.load``, a safe YAML loader and non-finite guards in
  BasicSR's own code paths; ``path.*`` options create no folder outside the run's own.
"""
from sfmnet_plugin.compat import checkpoints, distributed, hardening, resume, versions


def apply_all():
    """Apply every fix; safe to call more than once."""
    versions.alias_torchvision_functional_tensor()
    distributed.patch_init_dist_for_cpu()
    distributed.patch_ddp_wrapping_for_cpu()
    checkpoints.patch_resume_state_loading()
    checkpoints.patch_atomic_checkpoints()
    resume.patch_exact_resume()  # after patch_resume_state_loading: it wraps that load_resume_state
    versions.patch_lmdb_shared_environments()
    hardening.patch_safe_torch_load()
    hardening.patch_safe_yaml()
    hardening.patch_nonfinite_guards()  # after patch_atomic_checkpoints: it wraps that save_network
    hardening.patch_make_exp_dirs()
