from workbench.dashboard.runs import page

page()
