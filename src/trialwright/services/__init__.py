"""trialwright.services"""
