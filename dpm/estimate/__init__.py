"""What is estimated of a trained model beyond K: the likelihood L_k and the KL per step
(``likelihood``), the best K of a model's family (``limits``), the Parzen-window estimate."""
