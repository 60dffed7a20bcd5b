"""Human-preference scores per image (HPSv2.1, ImageReward, PickScore, LAION aesthetic): one module per scorer."""
