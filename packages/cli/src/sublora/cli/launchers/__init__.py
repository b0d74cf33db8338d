"""Built-in sweep launchers: ``local`` (processes here) and ``slurm`` (job arrays through submitit)."""
