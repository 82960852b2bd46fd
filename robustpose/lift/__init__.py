"""The 2D-to-3D lifting track: Human3.6M-topology data, lifters, PoseAug, 3D metrics and keypoint corruptions.

Modules (imported on use; this package imports nothing heavy, so the leaderboard can read lifting summaries):

* :mod:`~robustpose.lift.skeleton`: the 16-joint skeleton, bones, Rodrigues, pinhole projection (torch).
* :mod:`~robustpose.lift.data`: the ``data_3d_*.npz`` / ``data_2d_*.npz`` layout, cameras, splits.
* :mod:`~robustpose.lift.synth`: ``lift synth``, procedural data with shifted test splits.
* :mod:`~robustpose.lift.models`: Martinez et al.'s baseline and single-frame VideoPose3D.
* :mod:`~robustpose.lift.metrics`: ``mpjpe``, ``pa_mpjpe``, 3D-PCK / AUC, mPC / rPC of an error.
* :mod:`~robustpose.lift.corruptions`: keypoint corruptions, 5 x 5, seeded per sample.
* :mod:`~robustpose.lift.poseaug`: PoseAug's augmentor, discriminators and losses.
* :mod:`~robustpose.lift.engine` and :mod:`~robustpose.lift.methods`: the training loop, standard and PoseAug.
* :mod:`~robustpose.lift.evaluate` and :mod:`~robustpose.lift.summary`: ``lift eval`` and its leaderboard rows.

See docs/lifting.md.
"""
