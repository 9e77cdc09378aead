"""Harbor's tag retention on the lab registry: policies, their rules, and executions that delete what the rules
do not keep."""
