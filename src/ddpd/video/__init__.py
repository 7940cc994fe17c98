"""ddpd.video: synthetic microscopy video, reading video, particle tracking, tracking quality.

Modules: ``render`` (render_video), ``read`` (iter_frames, video_info), ``track``
(track_video), ``quality`` (tracking_quality), ``params`` (parameter validation).
"""
