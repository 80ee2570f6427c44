"""The paper's model: β schedules, the forward diffusions (Gaussian and binomial), the bound on
the log-likelihood, the networks and their temporal readouts, the model, its objective and its
estimate K on a holdout; an experiment (a model of a section, with its holdout); the seeds."""
