"""basicsr 1.4.2's distributed training on machines without CUDA (gloo)."""
from sfmnet_plugin.compat.changes import replace_for_process


def patch_init_dist_for_cpu():
    """Make ``--launcher pytorch`` work without CUDA (gloo), keeping upstream's nccl path on GPUs.

    Upstream ``init_dist`` calls ``torch.cuda.set_device(rank % device_count())`` (a
    ZeroDivisionError on CPU) and forces the ``spawn`` start method, which makes CPU DataLoader
    workers re-import everything at start-up; on CPU we keep the platform default.
    """
    import basicsr.utils.dist_util as dist_util
    import basicsr.utils.options as options
    import torch
    import torch.distributed as dist

    upstream_init_dist = dist_util.init_dist

    def init_dist(launcher, backend=None, **kwargs):
        if torch.cuda.is_available():
            return upstream_init_dist(launcher, backend or 'nccl', **kwargs)
        if launcher != 'pytorch':
            raise ValueError(f'Launcher {launcher!r} needs CUDA; on CPU use torchrun with --launcher pytorch.')
        if backend in (None, 'nccl'):
            backend = 'gloo'
        kwargs.pop('port', None)
        # torchrun provides RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (env:// rendezvous).
        dist.init_process_group(backend=backend, **kwargs)

    replace_for_process(dist_util, 'init_dist', init_dist)
    replace_for_process(options, 'init_dist', init_dist)  # parse_options calls the name bound in its own module


def patch_ddp_wrapping_for_cpu():
    """Wrap networks in DDP without ``device_ids`` when the model lives on the CPU.

    Upstream ``BaseModel.model_to_device`` passes ``device_ids=[torch.cuda.current_device()]``,
    which raises on a machine without CUDA. The option ``find_unused_parameters`` is honoured
    as upstream does.
    """
    import torch
    from basicsr.models.base_model import BaseModel
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    def model_to_device(self, net):
        net = net.to(self.device)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False))
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    replace_for_process(BaseModel, 'model_to_device', model_to_device)
