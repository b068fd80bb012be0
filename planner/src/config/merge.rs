//! Kamal deep merge of deploy.yml and deploy.<destination>.yml over located YAML trees.
