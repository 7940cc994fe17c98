"""ddpd.plots: figures (matplotlib, Agg backend), each written as <prefix>.png and .pdf.

Import the module you need (``ddpd.plots.statistics``, ``.training``, ``.conservation``,
``.errors``, ``.physics``): they depend on different libraries (freud, torch), and each
workflow rule's environment carries only its own.
"""
