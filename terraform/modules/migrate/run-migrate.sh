#!/bin/sh
# Run the migrate task once and fail unless it exited 0 (called by terraform during apply;
# by hand, set the variables from `terraform output migrate`).
set -eu
task=$(aws ecs run-task --region "$AWS_REGION" --cluster "$CLUSTER" \
  --task-definition "$TASK_DEFINITION" --launch-type FARGATE --count 1 \
  --network-configuration "awsvpcConfiguration={subnets=[$SUBNETS],securityGroups=[$SECURITY_GROUPS],assignPublicIp=DISABLED}" \
  --query 'tasks[0].taskArn' --output text)
echo "migrate: started $task; waiting for it to stop"
aws ecs wait tasks-stopped --region "$AWS_REGION" --cluster "$CLUSTER" --tasks "$task"
code=$(aws ecs describe-tasks --region "$AWS_REGION" --cluster "$CLUSTER" --tasks "$task" \
  --query "tasks[0].containers[?name=='migrate'].exitCode | [0]" --output text)
if [ "$code" != "0" ]; then
  echo "migrate: failed with exit code $code; see the log group $LOG_GROUP" >&2
  exit 1
fi
echo "migrate: done"
