"""The paper's evaluation (Su, Vargas, Sakurai 2019, Sec. IV):

* ``metrics``: success rates, confidence, cost, distortion, Figs. 5-7's counts.
* ``random_search``: the random-search baseline of Table VII.
* ``reproduce``: the runs of Tables IV-VIII and the report beside the paper's numbers.
"""
