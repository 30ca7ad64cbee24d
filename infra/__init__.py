"""The single definition of a stage's resources (never deployed as code).

``infra.template.stage_template(stage)`` returns a CloudFormation template.
The local stage provisions it on the embedded AWS (``localstage.provision``);
``make package`` merges it into the SAM template ``chalice package`` writes.
"""
