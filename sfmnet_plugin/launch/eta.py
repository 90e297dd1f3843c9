"""The ETA of BasicSR's progress lines, from the iterations this run timed, never negative.

BasicSR printed ``eta: -1 day, 23:59:56`` at the end of a run and under-estimated throughout: it divided the time
measured since iteration 1 by every iteration since the start (one more than it had timed) and counted one
iteration fewer than remain. The run (:mod:`sfmnet_plugin.launch.session`) replaces
``basicsr.train.MessageLogger`` with :func:`eta_message_logger_class` of it.
"""
import time
from datetime import timedelta


def eta_message_logger_class(base):
    """BasicSR's ``MessageLogger`` with an ETA from the iterations this run timed, never negative."""
    from basicsr.utils.dist_util import master_only

    class MessageLoggerWithEta(base):
        def reset_start_time(self):
            # BasicSR calls this after iteration 1 of a fresh run: the timed iterations start there.
            super().reset_start_time()
            self.start_iter = 1

        @master_only
        def __call__(self, log_vars):
            log_vars = dict(log_vars)
            epoch, current_iter, lrs = log_vars.pop('epoch'), log_vars.pop('iter'), log_vars.pop('lrs')
            message = (f'[{self.exp_name[:5]}..][epoch:{epoch:3d}, iter:{current_iter:8,d}, lr:('
                       + ''.join(f'{v:.3e},' for v in lrs) + ')] ')
            if 'time' in log_vars:
                iter_time, data_time = log_vars.pop('time'), log_vars.pop('data_time')
                timed = current_iter - self.start_iter
                per_iter = (time.time() - self.start_time) / timed if timed > 0 else iter_time
                eta_sec = per_iter * max(0, self.max_iters - current_iter)
                message += f'[eta: {timedelta(seconds=int(eta_sec))}, time (data): {iter_time:.3f} ({data_time:.3f})] '
            for key, value in log_vars.items():
                message += f'{key}: {value:.4e} '
                if self.use_tb_logger and 'debug' not in self.exp_name:
                    self.tb_logger.add_scalar(f'losses/{key}' if key.startswith('l_') else key, value, current_iter)
            self.logger.info(message)

    return MessageLoggerWithEta
