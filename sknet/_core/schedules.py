"""Learning-rate schedules: what the learning rate is, epoch by epoch.

=============  ==============================================================
constant       ``lr_init`` throughout.
invscaling     ``lr_init / (t + 1) ** power_t`` with ``t`` the number of
               samples seen, updated at the end of each epoch (scikit-learn).
adaptive       ``lr_init`` until the stopping rule sees no progress; then the
               rate is divided by 5 instead of stopping, until it falls to
               1e-6 or below (scikit-learn).
exponential    ``lr_init * decay_rate ** epochs`` (epochs completed so far,
               across ``partial_fit`` calls and warm starts: each epoch
               multiplies the current rate by ``decay_rate``).
=============  ==============================================================
"""

__all__ = ["Schedule", "SCHEDULES"]

SCHEDULES = ("constant", "invscaling", "adaptive", "exponential")


class Schedule:
    """The learning rate at each epoch.

    Parameters
    ----------
    name : {"constant", "invscaling", "adaptive", "exponential"}
    lr_init : float
    power_t : float, default=0.5
    decay_rate : float, default=0.95
    lr : float, default=None
        The current rate, to continue an earlier schedule.
    """

    def __init__(self, name, lr_init, power_t=0.5, decay_rate=0.95, lr=None):
        if name not in SCHEDULES:
            raise ValueError(f"Unknown learning rate schedule {name!r}; use one of {SCHEDULES}.")
        self.name = name
        self.lr_init = float(lr_init)
        self.power_t = float(power_t)
        self.decay_rate = float(decay_rate)
        self.lr = float(lr_init if lr is None else lr)

    def epoch_end(self, t, epochs):
        """Update the rate after an epoch; ``t`` samples seen, ``epochs`` done."""
        if self.name == "invscaling":
            self.lr = self.lr_init / (t + 1) ** self.power_t
        elif self.name == "exponential":  # from the current rate: it may continue a fit
            self.lr *= self.decay_rate

    def on_plateau(self):
        """React to the stopping rule's trigger.

        Returns ``(stop, message_suffix)``: the adaptive schedule lowers the
        rate and asks to go on while the rate is above 1e-6.
        """
        if self.name != "adaptive":
            return True, " Stopping."
        if self.lr <= 1e-6:
            return True, " Learning rate too small. Stopping."
        self.lr /= 5.0
        return False, " Setting learning rate to %f" % self.lr
