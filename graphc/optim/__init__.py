"""``graphc.optim``: optimizers whose step is graph nodes, compiled with the loss.

``opt.minimize(loss, params)`` returns ``{param: new value}`` for the params, the
optimizer's state and its step counter; compile it with the loss::

    opt = optim.Adam(1e-3, clip_norm=1.0)
    step = gx.compile([x, t], loss, updates=opt.minimize(loss, model.params()))

Every optimizer follows ``torch.optim``'s formulas and defaults. Learning rates may be
schedules of the step count (``graphc.optim.schedules``).
"""

from graphc.optim import regularize, schedules
from graphc.optim.adam import Adam, AdamW, Nadam
from graphc.optim.adaptive import AdaDelta, Adagrad, RMSprop
from graphc.optim.base import Optimizer
from graphc.optim.schedules import Schedule
from graphc.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "AdaDelta", "Adam", "AdamW", "Nadam",
           "Schedule", "schedules", "regularize"]
